//! Newtypes parsed once at the edge. After parsing, no function takes a phone
//! number, an email address or a channel name as a bare string.

mod address;
mod ids;
mod phone;
mod recipient;

pub use address::{ChatId, EmailAddress};
pub use ids::{AlertId, CapStatus, ChannelId, MsgType, ZoneId};
pub use phone::{PhoneKind, PhoneNumber, PhoneRegion};
pub use recipient::Recipient;
