//! The body encoding of snapshot files: bincode 2 (serde), standard configuration. The only
//! file that imports bincode, so the encoding can be swapped without touching anything else.

use super::model::SnapshotV1;

pub fn encode(snapshot: &SnapshotV1) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(snapshot, bincode::config::standard())
        .map_err(|error| error.to_string())
}

/// Decodes a whole body; trailing bytes are an error, not ignored.
pub fn decode(body: &[u8]) -> Result<SnapshotV1, String> {
    let (snapshot, read) = bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map_err(|error| error.to_string())?;
    if read != body.len() {
        return Err(format!(
            "{} trailing bytes after the snapshot",
            body.len() - read
        ));
    }
    Ok(snapshot)
}
