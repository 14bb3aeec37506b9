//! Text fields of forms.

use leptos::prelude::*;

/// Empties `field` now that `sent`, what it held when its form was submitted, is saved — unless
/// the user has typed something else in it while the save was on its way: that is theirs, and
/// stays (the next entry, typed before the first was acknowledged). Nothing happens when the form
/// is gone by then (the user moved to another page, or signed in).
pub fn clear_if_sent(field: RwSignal<String>, sent: &str) {
    if field.try_with_untracked(|now| now.trim() == sent.trim()) == Some(true) {
        field.set(String::new());
    }
}
