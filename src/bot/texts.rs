//! What the bot says, Italian first (English for those who choose it with
//! /lingua). Short and plain: people read these on the night of a flood.
//! Every text is HTML for Telegram; anything not ours is escaped.

use crate::template::html_escape as esc;

/// The subscriber's language, as far as the bot's own texts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    It,
    En,
}

impl Lang {
    pub fn of(code: &str) -> Self {
        if code == "en" { Self::En } else { Self::It }
    }
}

pub fn welcome(l: Lang, sender: &str) -> String {
    match l {
        Lang::It => format!(
            "Benvenuto! Questo è il servizio di allerta di <b>{}</b>.\n\
             Qui riceverai gli avvisi di emergenza e di protezione civile per le zone che scegli.\n\n\
             <i>Privacy: conserviamo solo il tuo ID Telegram, le zone e la lingua, solo per inviarti gli avvisi. /privacy per i dettagli, /cancellami per cancellare tutto.</i>\n\n\
             {}",
            esc(sender),
            choose_zones(l)
        ),
        Lang::En => format!(
            "Welcome! This is the alert service of <b>{}</b>.\n\
             You will receive emergency and civil protection alerts here for the areas you choose.\n\n\
             <i>Privacy: we keep only your Telegram ID, your areas and your language, only to send you alerts. /privacy for details, /cancellami to erase everything.</i>\n\n\
             {}",
            esc(sender),
            choose_zones(l)
        ),
    }
}

pub fn choose_zones(l: Lang) -> &'static str {
    match l {
        Lang::It => "Scegli le tue zone (anche più di una), poi premi «Fatto»:",
        Lang::En => "Choose your areas (one or more), then press “Done”:",
    }
}

pub fn done_button(l: Lang) -> &'static str {
    match l {
        Lang::It => "Fatto",
        Lang::En => "Done",
    }
}

pub fn zones_saved(l: Lang, zones: &[String]) -> String {
    if zones.is_empty() {
        return match l {
            Lang::It => "Non hai scelto zone: riceverai solo gli avvisi per tutto il territorio comunale. /zone per sceglierle.".into(),
            Lang::En => "You chose no area: you will receive only the alerts for the whole municipality. /zone to choose.".into(),
        };
    }
    let list = esc(&zones.join(", "));
    match l {
        Lang::It => format!(
            "Fatto. Riceverai gli avvisi per: <b>{list}</b> (e quelli per tutto il comune).\n/zone per cambiare, /stop per non riceverne più."
        ),
        Lang::En => format!(
            "Done. You will receive the alerts for: <b>{list}</b> (and those for the whole municipality).\n/zone to change, /stop to receive no more."
        ),
    }
}

pub fn zone_toggled(l: Lang, zone: &str, added: bool) -> String {
    match (l, added) {
        (Lang::It, true) => format!("Aggiunta: {zone}"),
        (Lang::It, false) => format!("Tolta: {zone}"),
        (Lang::En, true) => format!("Added: {zone}"),
        (Lang::En, false) => format!("Removed: {zone}"),
    }
}

pub fn not_subscribed(l: Lang) -> &'static str {
    match l {
        Lang::It => "Non sei iscritto. Invia /start per ricevere gli avvisi.",
        Lang::En => "You are not subscribed. Send /start to receive alerts.",
    }
}

pub fn choose_language() -> &'static str {
    "Scegli la lingua degli avvisi / Choose the language of the alerts:"
}

pub fn language_saved(l: Lang) -> &'static str {
    match l {
        Lang::It => "Lingua: italiano.",
        Lang::En => {
            "Language: English. Alerts written only in Italian will still arrive in Italian."
        }
    }
}

pub fn status(l: Lang, active: bool, zones: &[String], language: &str) -> String {
    let zones = if zones.is_empty() {
        match l {
            Lang::It => "nessuna (solo avvisi per tutto il comune)".to_owned(),
            Lang::En => "none (only alerts for the whole municipality)".to_owned(),
        }
    } else {
        esc(&zones.join(", "))
    };
    let lang = if language == "en" {
        "English"
    } else {
        "italiano"
    };
    match (l, active) {
        (Lang::It, true) => {
            format!("Iscrizione <b>attiva</b>.\nZone: {zones}\nLingua: {lang}")
        }
        (Lang::It, false) => format!(
            "Iscrizione <b>sospesa</b> (/stop): non ricevi avvisi. /start per riattivarla.\nZone: {zones}\nLingua: {lang}"
        ),
        (Lang::En, true) => {
            format!("Subscription <b>active</b>.\nAreas: {zones}\nLanguage: {lang}")
        }
        (Lang::En, false) => format!(
            "Subscription <b>paused</b> (/stop): you receive no alerts. /start to resume.\nAreas: {zones}\nLanguage: {lang}"
        ),
    }
}

pub fn stopped(l: Lang) -> &'static str {
    match l {
        Lang::It => {
            "Non riceverai più avvisi. /start per riattivarli.\nIl tuo ID e le zone restano salvati finché non invii /cancellami."
        }
        Lang::En => {
            "You will receive no more alerts. /start to resume.\nYour ID and areas stay stored until you send /cancellami."
        }
    }
}

pub fn privacy(l: Lang, sender: &str) -> String {
    match l {
        Lang::It => format!(
            "<b>Privacy</b>\nTitolare: {}.\n\
             Conserviamo solo il tuo ID Telegram, le zone scelte, la lingua e, per ogni avviso inviato, l'esito della consegna e l'eventuale conferma «Ricevuto».\n\
             Li usiamo solo per inviarti gli avvisi di protezione civile; non li cediamo a nessuno.\n\
             /stop sospende gli avvisi; /cancellami cancella subito i tuoi dati (nell'archivio degli avvisi già inviati il tuo ID viene sostituito da un codice anonimo).",
            esc(sender)
        ),
        Lang::En => format!(
            "<b>Privacy</b>\nController: {}.\n\
             We keep only your Telegram ID, your areas, your language and, for each alert sent, the delivery outcome and any “Received” confirmation.\n\
             We use them only to send you civil protection alerts; we share them with no one.\n\
             /stop pauses the alerts; /cancellami erases your data at once (in the record of alerts already sent your ID is replaced by an anonymous code).",
            esc(sender)
        ),
    }
}

pub fn erased(l: Lang, subscriber: bool, deliveries: usize) -> String {
    let what = match (l, subscriber) {
        (Lang::It, true) => "Ho cancellato la tua iscrizione, le zone e la lingua.",
        (Lang::It, false) => "Non risultava nessuna iscrizione a tuo nome.",
        (Lang::En, true) => "I erased your subscription, areas and language.",
        (Lang::En, false) => "There was no subscription in your name.",
    };
    match l {
        Lang::It => format!(
            "{what}\nNell'archivio degli avvisi già inviati il tuo ID Telegram è stato sostituito da un codice anonimo ({deliveries} consegne); l'archivio resta per il resoconto degli avvisi.\n\
             Se il Comune ti ha inserito in un suo elenco di contatti, chiedi all'ufficio di protezione civile di toglierti.\n/start per iscriverti di nuovo."
        ),
        Lang::En => format!(
            "{what}\nIn the record of alerts already sent your Telegram ID was replaced by an anonymous code ({deliveries} deliveries); the record stays for the alert reports.\n\
             If the municipality put you on one of its contact lists, ask the civil protection office to remove you.\n/start to subscribe again."
        ),
    }
}

pub fn help(l: Lang, admin: bool) -> String {
    let mut text = match l {
        Lang::It => "Comandi:\n\
                     /start – iscriviti e scegli le zone\n\
                     /zone – cambia le zone\n\
                     /lingua – lingua (italiano, English)\n\
                     /stato – a cosa sei iscritto\n\
                     /stop – non ricevere più avvisi\n\
                     /privacy – quali dati teniamo\n\
                     /cancellami – cancella subito i tuoi dati\n\
                     /help – questo elenco"
            .to_owned(),
        Lang::En => "Commands:\n\
                     /start – subscribe and choose your areas\n\
                     /zone – change your areas\n\
                     /lingua – language (italiano, English)\n\
                     /stato – what you are subscribed to\n\
                     /stop – receive no more alerts\n\
                     /privacy – what data we keep\n\
                     /cancellami – erase your data now\n\
                     /help – this list"
            .to_owned(),
    };
    if admin {
        text.push_str(match l {
            Lang::It => "\n/ultima – stato dell'ultima allerta (operatori)",
            Lang::En => "\n/ultima – status of the latest alert (operators)",
        });
    }
    text
}

pub fn unknown(l: Lang) -> &'static str {
    match l {
        Lang::It => {
            "Non ho capito. /help per i comandi. Questo bot non riceve segnalazioni: in emergenza chiama il 112."
        }
        Lang::En => {
            "I did not understand. /help for the commands. This bot does not take reports: in an emergency call 112."
        }
    }
}

pub fn operators_only(l: Lang) -> &'static str {
    match l {
        Lang::It => "Comando riservato agli operatori di protezione civile.",
        Lang::En => "This command is for civil protection operators only.",
    }
}

pub fn ack(l: Lang, outcome: crate::ledger::Ack) -> &'static str {
    use crate::ledger::Ack;
    match (l, outcome) {
        (Lang::It, Ack::Recorded) => "Grazie: ricezione confermata.",
        (Lang::It, Ack::AlreadyRecorded) => "Avevi già confermato, grazie.",
        (Lang::It, Ack::Invalid) => "Conferma non valida per questa chat.",
        (Lang::En, Ack::Recorded) => "Thank you: receipt confirmed.",
        (Lang::En, Ack::AlreadyRecorded) => "You had already confirmed, thank you.",
        (Lang::En, Ack::Invalid) => "This confirmation is not valid for this chat.",
    }
}

pub fn no_alerts() -> &'static str {
    "Nessuna allerta inviata finora."
}
