//! What a call says and how long it takes: the language tag of every
//! `<Say>`, the "press 1" prompt in the recipient's language, and the
//! estimated duration that `preview` shows and `templates check` bounds.

use std::time::Duration;

/// Speaking rate assumed for text-to-speech: 150 words per minute. An
/// assumption, not a measurement made here (no TTS voice runs on this
/// machine): 150–180 words per minute is the range usually given for
/// comfortable listening, and read Italian is fast in syllables but has
/// long words, so its rate in words is in the same range. Taking the slow
/// end makes the estimate err long, which is the safe side for the 90 s
/// check, and a call to people who may be elderly should be slow anyway.
/// Digits written apart ("0 5 7 1") count as a word each, as they are said.
pub const WORDS_PER_MINUTE: f64 = 150.0;

/// The longest voice text `templates check` accepts, spoken once.
pub const MAX_TEXT: Duration = Duration::from_secs(90);

/// Estimated time to speak `text` once.
pub fn duration(text: &str) -> Duration {
    let words = text.split_whitespace().count() as f64;
    Duration::from_secs_f64(words * 60.0 / WORDS_PER_MINUTE)
}

/// The whole call as it is played: the text twice, a one-second pause
/// between, then the prompt.
pub fn call_duration(text: &str, language: &str) -> Duration {
    duration(text) * 2 + Duration::from_secs(1) + duration(prompt(language))
}

/// The `<Say language>` of a recipient's language (Twilio's tags).
pub fn language_tag(language: &str) -> String {
    match language {
        "it" => "it-IT",
        "en" => "en-GB",
        "de" => "de-DE",
        "fr" => "fr-FR",
        "es" => "es-ES",
        "pt" => "pt-PT",
        "ro" => "ro-RO",
        "pl" => "pl-PL",
        "nl" => "nl-NL",
        "ru" => "ru-RU",
        "uk" => "uk-UA",
        "ar" => "arb",
        "zh" => "cmn-CN",
        other => return other.to_owned(),
    }
    .to_owned()
}

/// "Press 1 to confirm", in the recipient's language (Italian when the
/// language has no prompt here).
pub fn prompt(language: &str) -> &'static str {
    match language {
        "en" => "Press 1 to confirm that you received this message.",
        "de" => "Drücken Sie 1, um den Empfang dieser Nachricht zu bestätigen.",
        "fr" => "Appuyez sur 1 pour confirmer la réception de ce message.",
        "es" => "Pulse 1 para confirmar que ha recibido este mensaje.",
        "ro" => "Apăsați 1 pentru a confirma primirea acestui mesaj.",
        _ => "Premi 1 per confermare di aver ricevuto questo messaggio.",
    }
}

/// Said after the key was pressed.
pub fn thanks(language: &str) -> &'static str {
    match language {
        "en" => "Thank you. Confirmation received.",
        "de" => "Danke. Bestätigung erhalten.",
        "fr" => "Merci. Confirmation reçue.",
        "es" => "Gracias. Confirmación recibida.",
        "ro" => "Mulțumim. Confirmare primită.",
        _ => "Grazie. Conferma ricevuta.",
    }
}

/// The language a prompt exists for, or Italian (so prompt and tag agree).
pub fn prompt_language(language: &str) -> &str {
    match language {
        "en" | "de" | "fr" | "es" | "ro" | "it" => language,
        _ => "it",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_counts_words_at_150_per_minute() {
        assert_eq!(duration(&"parola ".repeat(150)), Duration::from_secs(60));
        assert_eq!(duration("  "), Duration::ZERO);
        let text = "parola ".repeat(10);
        assert!(call_duration(&text, "it") > duration(&text) * 2);
    }

    #[test]
    fn languages_have_tags_and_prompts() {
        assert_eq!(language_tag("it"), "it-IT");
        assert_eq!(language_tag("en"), "en-GB");
        assert!(prompt("it").starts_with("Premi 1 per confermare"));
        assert!(prompt("xx").starts_with("Premi 1"));
        assert_eq!(prompt_language("xx"), "it");
    }
}
