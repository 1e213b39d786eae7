//! What the table's stream's second reader (`events-record`) makes of every event: its audit record
//! and, for an event that changes a day's sales, the store's report counters, in one write. The
//! audit record is keyed by the event and created only where absent, so it is also the proof that a
//! delivery is the first: the counters need no processed-event record, and the sales reports no
//! queue of their own (a stream allows two readers, the notifier being the other). The replay
//! ([`crate::replay`]) makes the same effect for the events of a lost window.

use crate::app::App;
use crate::audit;
use crate::consumer::Effect;
use crate::error::ApiError;
use crate::events::Event;
use crate::reports;

/// `event`'s audit record, with the counters it moves.
pub async fn effect(app: &App, event: &Event) -> Result<Effect, ApiError> {
    Ok(Effect::Append {
        record: audit::record_item(event, app.config.audit_days_in_table)?,
        with: reports::counter_updates(app, event).await?,
    })
}
