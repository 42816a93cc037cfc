//! kpl-sim
