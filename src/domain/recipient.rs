//! Who a delivery is for. The ledger keeps it in one text column; this is
//! the only code that reads or writes that column's forms.

/// Who a delivery is for, as the plan recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A row of a contact file, by its `id`.
    Contact(String),
    /// A subscriber of the Telegram bot, by chat id.
    Subscriber(String),
    /// The public broadcast channel (`channels.telegram.broadcast_chat`).
    Broadcast,
    /// Nobody in particular (the banner, a social account's followers).
    Public,
}

impl Recipient {
    /// From the ledger's `recipient` column: a contact id,
    /// `subscriber:<chat>`, `broadcast`, or nothing.
    pub fn from_column(value: Option<&str>) -> Self {
        match value {
            None => Self::Public,
            Some("broadcast") => Self::Broadcast,
            Some(v) => match v.strip_prefix("subscriber:") {
                Some(chat) => Self::Subscriber(chat.to_owned()),
                None => Self::Contact(v.to_owned()),
            },
        }
    }

    /// The ledger's `recipient` column for this recipient.
    pub fn to_column(&self) -> Option<String> {
        match self {
            Self::Contact(id) => Some(id.clone()),
            Self::Subscriber(chat) => Some(format!("subscriber:{chat}")),
            Self::Broadcast => Some("broadcast".to_owned()),
            Self::Public => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_the_column() {
        for r in [
            Recipient::Contact("c17".into()),
            Recipient::Subscriber("123456".into()),
            Recipient::Broadcast,
            Recipient::Public,
        ] {
            assert_eq!(Recipient::from_column(r.to_column().as_deref()), r);
        }
    }
}
