//! Shared helpers for the root integration tests.
