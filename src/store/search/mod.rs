//! How a listing (`GET /messages`, SPEC §2) is answered, search or not: one call, [`Search::list`].
//!
//! A listing is one statement ([`listing`]); for a search, the [`plan`] decides how that statement finds
//! its page (asking the trigram index for its rarest trigrams, reading rows in the listing's order, or
//! looking up the rowids of remembered matches), from what this process learned before: how common each
//! trigram is ([`plan::TrigramFrequencies`]) and, for filters asked before, how many rows matched through a
//! watermark and which ([`counts`]). What a listing counts is remembered for the next one, and on a libSQL
//! server shared with the other instances of a fleet. How rows get into the index is
//! `super::search_index`'s.

mod counts;
mod listing;
mod plan;

use counts::{Count, Filters, Known, SearchCounts};
use plan::TrigramFrequencies;

use super::backend::Backend;
#[cfg(feature = "remote")]
use super::rows::Table;
#[cfg(feature = "remote")]
use super::types::Query;
use super::types::{Page, StoreError};
use crate::query::ListParams;

/// What a store's listings learn, shared by every request to it.
#[derive(Default)]
pub struct Search {
    /// Totals of counted listings taken so far, so later ones count only newer rows.
    counts: SearchCounts,
    /// How common each trigram searched for is, so a search asks the index for the rarest ones.
    frequencies: TrigramFrequencies,
}

impl Search {
    /// The statement that reads the totals the other instances of a fleet shared, for [`Search::take_shared`].
    #[cfg(feature = "remote")]
    pub fn shared_totals() -> Query {
        counts::shared_totals()
    }

    /// Remembers the totals in the rows of [`Search::shared_totals`].
    #[cfg(feature = "remote")]
    pub fn take_shared(&self, rows: Table) -> Result<(), StoreError> {
        self.counts.take_shared(rows)
    }

    /// One page of messages matching `params`, chronological then by id, and the count of all matches.
    pub async fn list(&self, backend: &Backend, params: &ListParams) -> Result<Page, StoreError> {
        if let Some(q) = params.q.as_deref() {
            self.learn_frequencies(backend, q).await?;
        }
        let filters = listing::counted(params).then(|| Filters::of(params));
        let mut known = filters.as_ref().and_then(|filters| self.counts.get(filters));
        if let (Some(filters), Some(known)) = (&filters, &mut known) {
            self.remember_matches_if_worth(backend, params, filters, known).await?;
        }
        let (mut page, mut counted) = self.list_with(backend, params, known.as_ref()).await?;
        let mut shared_through = known.as_ref().map(|known| known.count.through);
        if let (Some(known), Some(now)) = (known, counted) {
            if known.count.removed != now.removed {
                // Rows were deleted since that count was taken, so it no longer holds: count from scratch.
                self.counts.forget_all();
                (page, counted) = self.list_with(backend, params, None).await?;
                shared_through = None;
            }
        }
        if let Some((filters, counted)) = filters.zip(counted) {
            // A count taken from scratch, or far past the one known, is worth the other instances'.
            let news = shared_through.is_none_or(|through| counted.through - through >= counts::SHARE_AGAIN_AFTER);
            if news && backend.shares_counts() {
                if let Some(statements) = counts::sharing(&filters, &counted) {
                    backend.share(statements);
                }
            }
            self.counts.remember(filters, counted);
        }
        Ok(page)
    }

    /// One listing, given what is `known` of its filters, and the count it took if it counted.
    async fn list_with(
        &self,
        backend: &Backend,
        params: &ListParams,
        known: Option<&Known>,
    ) -> Result<(Page, Option<Count>), StoreError> {
        let (statements, plan) = listing::list(params, known, &self.frequencies, backend.tables());
        let (page, counted) = listing::page(backend.list(&statements).await?, params, backend.tables())?;
        if plan.holds(page.total) {
            return Ok((page, counted));
        }
        // More matches came past the remembered ones than the page allowed for: list it without skipping.
        let known = known.map(|known| Known { count: known.count, matches: None });
        let (statements, _) = listing::list(params, known.as_ref(), &self.frequencies, backend.tables());
        listing::page(backend.list(&statements).await?, params, backend.tables())
    }

    /// Finds and remembers every match of a search asked again, where reading its pages from them is worth
    /// finding them ([`plan::worth_remembering`]) and a statement costs no round trip.
    async fn remember_matches_if_worth(
        &self,
        backend: &Backend,
        params: &ListParams,
        filters: &Filters,
        known: &mut Known,
    ) -> Result<(), StoreError> {
        let Some(q) = params.q.as_deref().filter(|_| listing::reads_remembered_matches(params)) else { return Ok(()) };
        let reach = listing::reach(params);
        if !backend.reads_locally() || !plan::worth_remembering(q, known, reach, &self.frequencies) {
            return Ok(());
        }
        // Listings asking at once leave it to the first; the rest read as they would have.
        let Some(_finding) = self.counts.start_finding(filters) else { return Ok(()) };
        let matches = listing::matches_of(backend.fetch(&listing::matches(params, &self.frequencies)).await?)?;
        if let Some(matches) = matches {
            known.matches = self.counts.remember_matches(filters, matches).or(known.matches.take());
        }
        Ok(())
    }

    /// Learns how common the trigrams of `q` not seen before are, where a statement costs no round trip (on
    /// a server the search asks the index for every trigram instead).
    async fn learn_frequencies(&self, backend: &Backend, q: &str) -> Result<(), StoreError> {
        let unknown = self.frequencies.unknown(q);
        if unknown.is_empty() || !backend.reads_locally() {
            return Ok(());
        }
        let rows = backend.fetch(&listing::trigram_frequencies(&unknown)).await?;
        self.frequencies.learn(&unknown, rows)
    }
}
