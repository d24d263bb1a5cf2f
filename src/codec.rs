//! The binary encoding of everything written to disk (snapshot bodies, journal records):
//! bincode 2 (serde), standard configuration. The only file that imports bincode, so the
//! encoding can be swapped without touching anything else.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|error| error.to_string())
}

/// Appends the encoding of `value` to `buffer`.
pub fn encode_into<T: Serialize>(value: &T, buffer: &mut Vec<u8>) -> Result<(), String> {
    bincode::serde::encode_into_std_write(value, buffer, bincode::config::standard())
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// Decodes a whole buffer; trailing bytes are an error, not ignored.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|error| error.to_string())?;
    if read != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - read));
    }
    Ok(value)
}
