//! kpl-core
