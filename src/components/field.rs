//! Text fields of forms.

use leptos::prelude::*;

/// Empties `field` now that `sent`, what it held when its form was submitted, is saved — unless
/// the user has typed something else in it while the save was on its way: that is theirs, and
/// stays (the next entry, typed before the first was acknowledged).
pub fn clear_if_sent(field: RwSignal<String>, sent: &str) {
    if field.with_untracked(|now| now.trim() == sent.trim()) {
        field.set(String::new());
    }
}
