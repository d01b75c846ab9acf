//! Integration tests of pipeline-validate (one test binary; modules beside this file).

mod engine;
mod quality;
mod report;
mod rules;
mod util;
