//! The pure domain model: value types, aggregates and their events.
//!
//! Nothing here does IO, awaits, or reads a clock: time and ids are inputs to
//! `decide`. Each aggregate is one event stream; `decide` turns a command into
//! new events (or a [`DomainError`]), `evolve` folds an event into the state.

pub mod access_review;
pub mod action;
pub mod api_key;
mod error;
mod event;
pub mod org;
pub mod personal;
pub mod session;
pub mod signing_key;
pub mod stored;
#[cfg(test)]
mod testing;
pub mod user;
pub mod values;

pub use error::DomainError;
pub use event::{DomainEvent, StreamType};

/// An aggregate: the consistency boundary of one event stream.
pub trait Aggregate: Default + Sized {
    /// The stream type this aggregate is stored under.
    const STREAM_TYPE: StreamType;
    /// The events of this stream, each one of the log's events.
    type Event: DomainEvent + Into<stored::AnyEvent>;
    /// The commands this aggregate decides on.
    type Command;

    /// Decides which events a command produces, given the current state.
    /// An empty vector means the command changes nothing (a no-op).
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, DomainError>;

    /// Folds one event into the state.
    fn evolve(self, event: &Self::Event) -> Self;

    /// Folds a sequence of events, starting from the empty state.
    fn from_events<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::default(), Self::evolve)
    }
}
