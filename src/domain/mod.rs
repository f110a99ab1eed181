//! Newtypes parsed once at the edge. After parsing, no function takes a phone
//! number, an email address or a channel name as a bare string.

mod address;
mod ids;

pub use address::{ChatId, EmailAddress, PhoneNumber};
pub use ids::{AlertId, CapStatus, ChannelId, MsgType, ZoneId};
