//! One contract suite, two ledgers (SPEC §18: "same behaviour, same
//! contract tests against both"). Every scenario is written once, as a
//! function of the backend, and `contract!` makes it two tests:
//! `sqlite::<name>` on `allerta.db` and `postgres::<name>` on a throwaway
//! PostgreSQL cluster of its own (tests/common/pg.rs). The scenarios drive
//! the real binary and look only at what users and scripts see — exit
//! codes, stderr, `--json` documents, the outbox files, the servers'
//! records — never at the database, so the same assertions hold on both.

mod common;
#[path = "contract/console.rs"]
mod console;
#[path = "contract/drafts.rs"]
mod drafts;
#[path = "contract/harness.rs"]
mod harness;
#[path = "servers/kannel.rs"]
mod kannel;
#[path = "contract/ledger.rs"]
mod ledger;
#[path = "contract/parity.rs"]
mod parity;
#[path = "common/pg.rs"]
mod pg;
#[path = "contract/public.rs"]
mod public;
#[path = "contract/safety.rs"]
mod safety;
#[path = "contract/sms.rs"]
mod sms;
#[path = "servers/sms_support.rs"]
mod support;
#[path = "contract/telegram.rs"]
mod telegram;
#[path = "contract/voice.rs"]
mod voice;

// The scenario modules take these with `use super::*`.
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, METEO, OUTBOX_CHANNELS, Project, Server, start_server, synthetic_rows};
use serde_json::{Value, json};

use console::*;
use drafts::*;
use harness::*;
use ledger::*;
use public::*;
use safety::*;
use sms::*;
use telegram::*;
use voice::*;

/// `contract! { a, b, c => ignore "why" }`: `sqlite::a` and `postgres::a`
/// for each scenario; `=> ignore` marks the PostgreSQL test of a scenario
/// that fails there (a bug of the port, reported, not papered over).
macro_rules! contract {
    ($($name:ident $(=> ignore $why:literal)?),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::Backend::Sqlite);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                $(#[ignore = $why])?
                fn $name() {
                    super::on_postgres(super::$name);
                }
            )*
        }
    };
}

// `cargo test --test contract sqlite::` or `postgres::` runs one backend.
contract! {
    // tests/contract/ledger.rs
    send_fans_out_once_per_address_and_reports_it,
    check_finds_the_ledger_ready_before_and_after_the_first_send,
    a_drill_reaches_only_the_drill_audience_marked_as_exercise,
    the_same_key_twice_is_one_alert_and_another_fingerprint_is_refused,
    update_then_cancel_a_thread_while_it_is_being_sent,
    sigkill_mid_send_then_resume_loses_nobody_and_resends_no_sent,
    // tests/contract/safety.rs
    two_person_rule_holds_the_alert_until_another_approver_decides,
    ctrl_c_pauses_and_only_resume_with_its_id_and_a_confirmation_finishes,
    sigterm_leaves_it_to_the_timer_which_refuses_a_switched_transport,
    skipped_rows_are_recorded_and_list_since_filters,
    // tests/contract/sms.rs
    failed_deliveries_are_listed_and_retry_sends_them_once_the_gateway_is_up,
    kannel_reports_of_every_part_settle_a_two_part_sms_delivered,
    serve_records_delivery_reports_and_answers_health,
    // tests/contract/telegram.rs
    bot_subscribers_receive_alerts_stop_and_are_forgotten,
    an_escalation_step_reaches_only_who_did_not_acknowledge,
    // tests/contract/console.rs
    the_console_shows_the_alert_who_it_did_not_reach_and_the_report,
    console_approvals_refuse_the_creator_then_approve_and_reject,
    // tests/contract/public.rs
    the_public_files_follow_sends_updates_cancels_and_keep_drills_apart,
    social_updates_and_cancels_reply_in_the_thread_of_the_first_post,
    // tests/contract/voice.rs
    voice_calls_are_acknowledged_retried_when_busy_and_failed_when_invalid,
    // tests/contract/drafts.rs
    watch_makes_drafts_that_are_sent_or_discarded,
}

/// What is PostgreSQL's alone: a wrong database password is refused with
/// a clear error before anything is planned or sent, and `check` says so.
#[test]
fn postgres_with_a_wrong_password_sends_nothing_and_check_says_why() {
    let Some(cluster) = pg::Cluster::start() else {
        return;
    };
    let p = Project::with_database(
        OUTBOX_CHANNELS,
        &Backend::Postgres {
            url: cluster.url(),
            password: "not the password".to_owned(),
            lease: "30s".to_owned(),
        },
    );
    p.contacts("c.csv", &synthetic_rows(3, "example.org"));
    let (code, out, err) = p.run(&meteo_send(&["--all", "--yes"]));
    assert_eq!(code, 1, "a database error (SPEC §6): {out}{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(
        !err.contains("not the password"),
        "the password is never printed: {err}"
    );
    assert_eq!(all_outbox(&p), 0, "nothing sent");
    let (code, doc, err) = p.json(&["check"]);
    assert_eq!(code, 1, "{err}\n{doc}");
    let db = check_item(&doc, "database");
    assert_eq!(db["ok"], false, "{db}");
    assert!(db.to_string().contains("password"), "{db}");
    assert!(!doc.to_string().contains("not the password"), "{doc}");
}

/// A PostgreSQL cluster of its own for one scenario (skipped with a message
/// when PostgreSQL is missing outside CI; CI fails instead).
fn on_postgres(scenario: fn(&Backend)) {
    let Some(cluster) = pg::Cluster::start() else {
        return;
    };
    let backend = Backend::Postgres {
        url: cluster.url(),
        password: pg::PASSWORD.to_owned(),
        // Short, so that `resume` after a SIGKILL takes over the dead
        // process's claims within seconds (SPEC §18: within twice the lease).
        lease: "3s".to_owned(),
    };
    scenario(&backend);
}
