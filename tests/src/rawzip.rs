//! A zip writer that writes whatever it is told: duplicate names, names that are not UTF-8,
//! declared sizes and CRCs that lie, any Unix mode. For feeding hostile module zips to checkers;
//! the `zip` crate's writer refuses most of these. Entries are stored, or deflated with their
//! sizes in a data descriptor after the data, as the go command's zip writer does.

/// One entry as it will appear in the archive.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    /// Uncompressed size to declare instead of `data.len()`.
    pub declared: Option<u32>,
    /// Write a wrong CRC-32.
    pub bad_crc: bool,
    /// Unix mode (e.g. `0o120777` for a symlink) in the external attributes.
    pub mode: Option<u32>,
    /// Deflate the data and write CRC and sizes in a data descriptor (Go's `zip.Writer`).
    pub deflate: bool,
}

impl RawEntry {
    pub fn new(name: impl Into<Vec<u8>>, data: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            data: data.into(),
            declared: None,
            bad_crc: false,
            mode: None,
            deflate: false,
        }
    }
}

/// CRC-32 (IEEE), bit by bit: entries are small.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Raw deflate (no zlib header), as zip entries store it.
fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(data).expect("deflate to memory");
    w.finish().expect("deflate to memory")
}

/// The bytes of a zip archive holding `entries` in order.
pub fn write(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = u32::try_from(out.len()).expect("archive under 4 GiB");
        let crc = crc32(&e.data) ^ u32::from(e.bad_crc);
        let declared = e
            .declared
            .unwrap_or(u32::try_from(e.data.len()).expect("entry under 4 GiB"));
        let (method, payload) = if e.deflate {
            (8u16, deflate(&e.data))
        } else {
            (0u16, e.data.clone())
        };
        let size = u32::try_from(payload.len()).expect("entry under 4 GiB");
        let utf8 = std::str::from_utf8(&e.name).is_ok_and(|s| !s.is_ascii());
        let flags: u16 = if utf8 { 1 << 11 } else { 0 } | if e.deflate { 1 << 3 } else { 0 };
        let name_len = u16::try_from(e.name.len()).expect("name under 64 KiB");
        // Local file header: with a data descriptor, CRC and sizes come after the data.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        for v in [20u16, flags, method, 0, 0x21] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let local = if e.deflate {
            [0, 0, 0]
        } else {
            [crc, size, declared]
        };
        for v in local {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&e.name);
        out.extend_from_slice(&payload);
        if e.deflate {
            for v in [0x0807_4b50u32, crc, size, declared] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        // Central directory header.
        let made_by: u16 = if e.mode.is_some() { 3 << 8 | 20 } else { 20 };
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        for v in [made_by, 20, flags, method, 0, 0x21] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, size, declared] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [name_len, 0, 0, 0, 0] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        let external = e.mode.map_or(0, |m| m << 16);
        central.extend_from_slice(&external.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&e.name);
    }
    let cd_offset = u32::try_from(out.len()).expect("archive under 4 GiB");
    let cd_size = u32::try_from(central.len()).expect("directory under 4 GiB");
    let count = u16::try_from(entries.len()).expect("under 65536 entries");
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, count, count] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}
