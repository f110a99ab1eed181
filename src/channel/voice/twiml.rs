//! The call's instructions in TwiML: the text twice in the recipient's
//! language, then "press 1 to confirm" inside a one-digit `<Gather>` whose
//! answer goes to the keypress route.

use super::speech;
// Escapes `<`, `>`, `&` and `"`: enough for XML text and for attribute
// values quoted with `"`, as every attribute here is.
use crate::template::html_escape as xml_escape;

/// The `<Response>` for one delivery. `language` is the language the text
/// is in; `gather_url` the keypress route of this delivery.
pub fn message(text: &str, language: &str, gather_url: &str) -> String {
    let tag = xml_escape(&speech::language_tag(language));
    let prompt_lang = speech::prompt_language(language);
    let prompt_tag = xml_escape(&speech::language_tag(prompt_lang));
    let text = xml_escape(text);
    format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<Response>\n",
            "  <Say language=\"{tag}\">{text}</Say>\n",
            "  <Pause length=\"1\"/>\n",
            "  <Say language=\"{tag}\">{text}</Say>\n",
            "  <Gather input=\"dtmf\" numDigits=\"1\" timeout=\"8\" action=\"{action}\" method=\"POST\">\n",
            "    <Say language=\"{ptag}\">{prompt}</Say>\n",
            "  </Gather>\n",
            "</Response>\n"
        ),
        tag = tag,
        text = text,
        action = xml_escape(gather_url),
        ptag = prompt_tag,
        prompt = xml_escape(speech::prompt(prompt_lang)),
    )
}

/// After the keypress: thanks (for `1`) and hang up.
pub fn after_keypress(language: &str, confirmed: bool) -> String {
    let lang = speech::prompt_language(language);
    let say = if confirmed {
        format!(
            "  <Say language=\"{}\">{}</Say>\n",
            xml_escape(&speech::language_tag(lang)),
            xml_escape(speech::thanks(lang))
        )
    } else {
        String::new()
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n{say}  <Hangup/>\n</Response>\n"
    )
}

/// For a request that is not ours (or no longer playable): hang up.
pub fn hangup() -> String {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n  <Hangup/>\n</Response>\n".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_said_twice_then_the_prompt_inside_gather() {
        let xml = message(
            "Allerta <rossa> & \"evacuare\"",
            "it",
            "https://x/voice/gather?d=1&k=ab",
        );
        assert_eq!(
            xml.matches(
                "<Say language=\"it-IT\">Allerta &lt;rossa&gt; &amp; &quot;evacuare&quot;</Say>"
            )
            .count(),
            2,
            "{xml}"
        );
        let gather = xml.find("<Gather").expect("gather");
        assert!(xml[gather..].contains("Premi 1 per confermare"), "{xml}");
        assert!(xml.contains("numDigits=\"1\""), "{xml}");
        assert!(
            xml.contains("action=\"https://x/voice/gather?d=1&amp;k=ab\""),
            "{xml}"
        );
        let en = message("Alert", "en", "u");
        assert!(
            en.contains("language=\"en-GB\"") && en.contains("Press 1"),
            "{en}"
        );
    }
}
