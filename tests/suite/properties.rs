//! Never-panic properties.
