//! Compose for berth: the compose specification's files loaded, merged, interpolated and normalised
//! the way Docker Compose v2 does (`loader`), read into typed services (`model`), mapped onto the
//! Engine API's containers (`convert`) and brought up and down by a `stack`.

pub mod convert;
pub mod labels;
pub mod loader;
pub mod model;
pub mod stack;
