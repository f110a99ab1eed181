//! What a reading means: names compared the way people write them, rule
//! variables filled, and the decision — a new draft for every risk whose
//! level is new or raised, a cessata-allerta when every level is gone.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::config::Rule;
use super::level::Level;

/// A comune's name as compared: accents, case, apostrophes, spaces and
/// punctuation ignored, so "Sant'Egidio alla Vibrata", "SANT EGIDIO ALLA
/// VIBRATA" and "Sant’Egidio alla Vibrata" are the same comune.
pub fn normalize(name: &str) -> String {
    name.chars()
        .flat_map(char::to_lowercase)
        .map(fold_accent)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// A text as lower-case words without accents, one space between them
/// (apostrophes and punctuation separate words): for "contains" matches of
/// CAP areas and events, where a word must match whole.
pub fn words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase).map(fold_accent) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.trim_end().to_owned()
}

fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => 'a',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ò' | 'ó' | 'ô' | 'ö' | 'õ' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        'ý' | 'ÿ' => 'y',
        other => other,
    }
}

/// Fills `{{ level }}`, `{{ risk }}` and `{{ day }}` in a rule's variable.
/// Any other `{{ … }}` is an error: a typo must not reach citizens as text.
pub fn fill(value: &str, level: Level, risk: &str, day: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("`{value}`: `{{{{` without `}}}}`"));
        };
        match after[..end].trim() {
            "level" => out.push_str(level.as_str()),
            "risk" => out.push_str(risk),
            "day" => out.push_str(&italian_day(day)),
            other => {
                return Err(format!(
                    "`{value}`: unknown placeholder `{{{{ {other} }}}}` (use level, risk or day)"
                ));
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `2026-12-02` → `mercoledì 2 dicembre`: how the day is said to citizens.
pub fn italian_day(iso: &str) -> String {
    match NaiveDate::parse_from_str(iso, "%Y-%m-%d") {
        Ok(d) => crate::web::italian_date(&d),
        Err(_) => iso.to_owned(),
    }
}

/// The rule risks a CAP entry is about: each rule's risk that is a word of
/// the entry's event or awareness type ("thunderstorm" in "Orange
/// Thunderstorm Warning"), case ignored. A reading is keyed by these, not by
/// the event text, whose colour word changes with the level.
pub fn cap_risks(rules: &[Rule], text: &str) -> Vec<String> {
    let text = format!(" {} ", words(text));
    let mut risks: Vec<String> = Vec::new();
    for rule in rules {
        let wanted = words(&rule.risk);
        if !wanted.is_empty()
            && text.contains(&format!(" {wanted} "))
            && !risks.contains(&rule.risk)
        {
            risks.push(rule.risk.clone());
        }
    }
    risks
}

/// The rule for a risk at a level: among the rules naming the risk, the one
/// with the highest level not above it (a `giallo` rule also covers
/// arancione and rosso unless those have their own).
pub fn rule_for<'r>(rules: &'r [Rule], risk: &str, level: Level) -> Option<&'r Rule> {
    rules
        .iter()
        .filter(|r| r.level <= level && r.risk == risk)
        .max_by_key(|r| r.level)
}

/// What one reading of one bulletin day asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision<'r> {
    /// Nothing new: the same levels, or only lower ones.
    Nothing,
    /// These risks are new or raised: one draft each.
    Drafts(Vec<(String, Level, &'r Rule)>),
    /// Every level is back to none after some were read.
    Ended,
}

pub fn decide<'r>(
    rules: &'r [Rule],
    before: &BTreeMap<String, Level>,
    now: &BTreeMap<String, Level>,
) -> Decision<'r> {
    let raised: Vec<_> = now
        .iter()
        .filter(|(risk, level)| before.get(*risk).is_none_or(|b| b < *level))
        .filter_map(|(risk, level)| {
            rule_for(rules, risk, *level).map(|rule| (risk.clone(), *level, rule))
        })
        .collect();
    if !raised.is_empty() {
        Decision::Drafts(raised)
    } else if now.is_empty() && !before.is_empty() {
        Decision::Ended
    } else {
        Decision::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(level: Level, risk: &str) -> Rule {
        Rule {
            level,
            risk: risk.into(),
            template: "allerta-meteo".into(),
            vars: BTreeMap::new(),
            audience: vec!["all".into()],
        }
    }

    fn levels(pairs: &[(&str, Level)]) -> BTreeMap<String, Level> {
        pairs.iter().map(|(r, l)| ((*r).to_owned(), *l)).collect()
    }

    #[test]
    fn names_compare_without_accents_case_or_apostrophes() {
        let same = |a: &str, b: &str| normalize(a) == normalize(b);
        assert!(same("Sant'Egidio alla Vibrata", "SANT EGIDIO ALLA VIBRATA"));
        assert!(same(
            "Sant'Egidio alla Vibrata",
            "Sant’Egidio  alla vibrata"
        ));
        assert!(same("Montelupo Fiorentino", "MONTELUPO fiorentino"));
        assert!(same("Forlì", "FORLI"));
        assert!(same(
            "Isola del Gran Sasso d'Italia",
            "isola del gran sasso d italia"
        ));
        assert!(!same("Montelupo", "Montelupo Fiorentino"));
        assert_eq!(words("Toscana & Umbria"), "toscana umbria");
        assert_eq!(words(" L'Aquila, Città "), "l aquila citta");
    }

    #[test]
    fn placeholders_are_filled_and_typos_refused() {
        assert_eq!(
            fill(
                "ore 0 di {{ day }}",
                Level::Rosso,
                "idraulico",
                "2026-12-02"
            )
            .unwrap(),
            "ore 0 di mercoledì 2 dicembre"
        );
        assert_eq!(
            fill(
                "{{level}}/{{ risk }}",
                Level::Giallo,
                "temporali",
                "2026-12-02"
            )
            .unwrap(),
            "giallo/temporali"
        );
        assert!(fill("{{ livello }}", Level::Giallo, "x", "2026-12-02").is_err());
        assert!(fill("{{ level", Level::Giallo, "x", "2026-12-02").is_err());
    }

    #[test]
    fn the_highest_rule_not_above_the_level_applies() {
        let rules = [
            rule(Level::Giallo, "idraulico"),
            rule(Level::Rosso, "idraulico"),
        ];
        assert_eq!(
            rule_for(&rules, "idraulico", Level::Giallo).unwrap().level,
            Level::Giallo
        );
        assert_eq!(
            rule_for(&rules, "idraulico", Level::Arancione)
                .unwrap()
                .level,
            Level::Giallo
        );
        assert_eq!(
            rule_for(&rules, "idraulico", Level::Rosso).unwrap().level,
            Level::Rosso
        );
        assert!(rule_for(&rules, "temporali", Level::Rosso).is_none());
    }

    #[test]
    fn cap_events_are_keyed_by_the_rule_words_they_contain() {
        let rules = [
            rule(Level::Giallo, "thunderstorm"),
            rule(Level::Rosso, "thunderstorm"),
        ];
        assert_eq!(
            cap_risks(&rules, "Orange Thunderstorm Warning"),
            vec!["thunderstorm"]
        );
        assert_eq!(
            cap_risks(&rules, "Yellow thunderstorm warning 3; thunderstorm"),
            vec!["thunderstorm"]
        );
        assert!(cap_risks(&rules, "Yellow Wind Warning").is_empty());
        assert!(cap_risks(&rules, "Thunderstorms").is_empty());
    }

    #[test]
    fn new_and_raised_levels_draft_same_and_lower_do_not_none_ends() {
        let rules = [
            rule(Level::Giallo, "idraulico"),
            rule(Level::Giallo, "temporali"),
        ];
        let g = levels(&[("idraulico", Level::Giallo)]);
        let o = levels(&[("idraulico", Level::Arancione)]);
        let none = levels(&[]);
        assert!(matches!(decide(&rules, &none, &g), Decision::Drafts(d) if d.len() == 1));
        assert_eq!(decide(&rules, &g, &g), Decision::Nothing);
        assert!(
            matches!(decide(&rules, &g, &o), Decision::Drafts(d) if d[0].1 == Level::Arancione)
        );
        assert_eq!(decide(&rules, &o, &g), Decision::Nothing);
        assert_eq!(decide(&rules, &g, &none), Decision::Ended);
        assert_eq!(decide(&rules, &none, &none), Decision::Nothing);
        let both = levels(&[("idraulico", Level::Giallo), ("temporali", Level::Giallo)]);
        assert!(
            matches!(decide(&rules, &g, &both), Decision::Drafts(d) if d.len() == 1 && d[0].0 == "temporali")
        );
    }
}
