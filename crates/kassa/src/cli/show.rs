//! Output for people.
