//! Acknowledgements: the "✅ Ricevuto" button under a Telegram alert.

use super::sql::{OptionalExtension, params};

use super::{Ledger, LedgerError, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Recorded,
    AlreadyRecorded,
    /// Unknown delivery, wrong token, or pressed from another chat.
    Invalid,
}

impl Ledger {
    /// Records the press of the button on a delivery, if the token prefix
    /// and the chat match the delivery.
    pub fn acknowledge(
        &self,
        delivery_id: i64,
        token_prefix: &str,
        chat: &str,
    ) -> Result<Ack, LedgerError> {
        let row: Option<(String, String, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT address, token, acknowledged_at FROM deliveries
                 WHERE id = ?1 AND channel = 'telegram'",
                [delivery_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((address, token, acked)) = row else {
            return Ok(Ack::Invalid);
        };
        if address != chat || token_prefix.len() != 16 || !token.starts_with(token_prefix) {
            return Ok(Ack::Invalid);
        }
        if acked.is_some() {
            return Ok(Ack::AlreadyRecorded);
        }
        let n = self.conn.execute(
            "UPDATE deliveries SET acknowledged_at = ?2 WHERE id = ?1 AND acknowledged_at IS NULL",
            params![delivery_id, now_ms()],
        )?;
        Ok(if n == 1 {
            Ack::Recorded
        } else {
            Ack::AlreadyRecorded
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{delivery, ledger};
    use super::Ack;

    #[test]
    fn acknowledgement_needs_matching_token_and_chat() {
        let (_d, l) = ledger();
        delivery(l.conn(), 5, "42", "sent");
        assert_eq!(
            l.acknowledge(5, "0123456789abcdee", "42").expect("a"),
            Ack::Invalid
        );
        assert_eq!(
            l.acknowledge(5, "0123456789abcdef", "43").expect("a"),
            Ack::Invalid
        );
        assert_eq!(
            l.acknowledge(6, "0123456789abcdef", "42").expect("a"),
            Ack::Invalid
        );
        assert_eq!(
            l.acknowledge(5, "0123456789abcdef", "42").expect("a"),
            Ack::Recorded
        );
        assert_eq!(
            l.acknowledge(5, "0123456789abcdef", "42").expect("a"),
            Ack::AlreadyRecorded
        );
    }
}
