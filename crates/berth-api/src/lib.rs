//! Docker Engine API wire types
