//! tickpipe streaming executor (in progress).
