//! Test helpers: fixture images, daemons under test
