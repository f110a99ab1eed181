//! The bot's commands, parsed by hand: `/start@bot`, `/start payload` and
//! any case all work.

use teloxide::types::BotCommand;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    Start,
    Zone,
    Lingua,
    Stato,
    Stop,
    Privacy,
    Cancellami,
    Help,
    Ultima,
}

impl Command {
    pub(super) fn parse(text: &str, bot_username: &str) -> Option<Self> {
        let word = text.split_whitespace().next()?.strip_prefix('/')?;
        let name = match word.split_once('@') {
            Some((name, to)) if to.eq_ignore_ascii_case(bot_username) => name,
            Some(_) => return None, // addressed to another bot in a group
            None => word,
        };
        Some(match name.to_lowercase().as_str() {
            "start" => Self::Start,
            "zone" | "zones" => Self::Zone,
            "lingua" | "language" => Self::Lingua,
            "stato" | "status" => Self::Stato,
            "stop" => Self::Stop,
            "privacy" => Self::Privacy,
            "cancellami" => Self::Cancellami,
            "help" | "aiuto" => Self::Help,
            "ultima" => Self::Ultima,
            _ => return None,
        })
    }

    /// The menu Telegram shows next to the text box (operators' /ultima is
    /// left out).
    pub(super) fn menu() -> Vec<BotCommand> {
        [
            ("start", "Iscriviti e scegli le zone"),
            ("zone", "Cambia le zone"),
            ("lingua", "Lingua / Language"),
            ("stato", "A cosa sei iscritto"),
            ("stop", "Non ricevere più avvisi"),
            ("privacy", "Quali dati teniamo"),
            ("cancellami", "Cancella subito i tuoi dati"),
            ("help", "Aiuto"),
        ]
        .into_iter()
        .map(|(c, d)| BotCommand::new(c, d))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_mentions_payloads_and_case() {
        assert_eq!(
            Command::parse("/start", "allerta_bot"),
            Some(Command::Start)
        );
        assert_eq!(
            Command::parse("/start@Allerta_Bot abc", "allerta_bot"),
            Some(Command::Start)
        );
        assert_eq!(Command::parse("/STOP", "allerta_bot"), Some(Command::Stop));
        assert_eq!(Command::parse("/start@other_bot", "allerta_bot"), None);
        assert_eq!(Command::parse("ciao", "allerta_bot"), None);
        assert_eq!(Command::parse("/nope", "allerta_bot"), None);
        assert_eq!(
            Command::parse("/cancellami", "allerta_bot"),
            Some(Command::Cancellami)
        );
    }

    #[test]
    fn the_menu_has_every_citizen_command() {
        let names: Vec<String> = Command::menu().into_iter().map(|c| c.command).collect();
        for name in &names {
            assert!(Command::parse(&format!("/{name}"), "b").is_some(), "{name}");
        }
        assert!(!names.contains(&"ultima".to_owned()));
    }
}
