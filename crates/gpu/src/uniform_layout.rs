//! Test support: each uniform struct is written twice, in Rust (the bytes the host uploads)
//! and in WGSL (how the shader reads them). [`check`] parses the shader as it is compiled
//! (prelude included) with naga, the WGSL front end wgpu itself uses, and asserts that the WGSL
//! struct has the Rust struct's fields in the same order at the same byte offsets, and needs
//! no more bytes than the host binds. Each kernel file calls it through `uniform_matches!` (lib.rs),
//! which writes the test and reads the offsets with `offset_of!`.

use crate::pipeline::{full_source, Shader};

/// Assert that `wgsl_struct` in `shader` matches a Rust struct of `rust_size` bytes with
/// `rust_fields` (name, offset) in declaration order.
pub(crate) fn check(
    shader: &Shader,
    wgsl_struct: &str,
    rust_size: usize,
    rust_fields: &[(&str, usize)],
) {
    let source = full_source(shader);
    let module = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{}: {}", shader.name, e.emit_to_string(&source)));
    let (members, span) = module
        .types
        .iter()
        .find_map(|(_, ty)| match &ty.inner {
            naga::TypeInner::Struct { members, span }
                if ty.name.as_deref() == Some(wgsl_struct) =>
            {
                Some((members.clone(), *span))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{}: no struct {wgsl_struct}", shader.name));
    let wgsl: Vec<(String, usize)> = members
        .iter()
        .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
        .collect();
    let rust: Vec<(String, usize)> = rust_fields
        .iter()
        .map(|&(name, offset)| (name.to_string(), offset))
        .collect();
    assert_eq!(
        wgsl, rust,
        "{}: WGSL struct {wgsl_struct} (left) differs from its Rust twin (right)",
        shader.name
    );
    // Every field is a 4-byte u32 or f32, so a Rust struct with a field the list leaves out
    // is larger than 4 bytes per listed field.
    assert_eq!(
        rust_size,
        4 * rust_fields.len(),
        "{}: list every field of the Rust twin of {wgsl_struct}",
        shader.name
    );
    // The host pads the uniform to a multiple of 16 bytes (record.rs: bind_group).
    let bound = rust_size.div_ceil(16) * 16;
    assert!(
        span as usize <= bound,
        "{}: WGSL struct {wgsl_struct} takes {span} bytes, the host binds {bound}",
        shader.name
    );
}
