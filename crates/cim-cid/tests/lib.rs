//! Integration tests of cim-cid.
