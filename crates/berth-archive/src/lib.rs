//! Safe tar reading and writing, whiteouts
