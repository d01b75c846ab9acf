//! tickpipe partition parallelism (in progress).
