//! The detection core: causal Butterworth band-pass, STA/LTA characteristic functions,
//! trigger on/off, and network coincidence, each as streaming state over `f64`
//! samples that gives the same answer as ObsPy's functions on the whole series.
//!
//! - [`filter`]: [`BandPass`], ObsPy's `bandpass(..., zerophase=False)` as cascaded
//!   second-order sections.
//! - [`stalta`]: [`ClassicStaLta`] and [`RecursiveStaLta`], ObsPy's
//!   `classic_sta_lta` and `recursive_sta_lta`, warm-up zeros included.
//! - [`onset`]: [`Onset`], ObsPy's `trigger_onset(cf, on, off)` as a state machine,
//!   with optional minimum duration and re-trigger hold-off.
//! - [`coincidence`]: [`Coincidence`], ObsPy's `coincidence_trigger` over triggers
//!   that arrive as they end, emitting each network event once it can no longer
//!   change.
//! - [`pipeline`]: [`ChannelDetector`], filter, STA/LTA and onset in one per-channel
//!   state.
//! - [`window`]: [`WindowDetector`], a windowed statistic (mean, RMS, min, max, rate
//!   of change) against a running baseline, for pressure, infrasound and
//!   state-of-health channels.
//!
//! Everything here is pure: no I/O and no clocks. Samples are counted from the first
//! one a state ever saw (indices are `u64`), times are microseconds like
//! `formats::Time`, and every state derives serde so that it can be saved and
//! restored between packets. Formulas, defaults and the match with ObsPy are in
//! `docs/DETECTION.md`.

pub mod coincidence;
pub mod error;
pub mod filter;
pub mod onset;
pub mod pipeline;
pub mod stalta;
pub mod window;

pub use coincidence::{
    coincidence_trigger, Coincidence, CoincidenceChannel, CoincidenceConfig, CoincidenceError,
    Member, NetworkEvent, StationTrigger,
};
pub use error::ConfigError;
pub use filter::{BandPass, BandPassConfig};
pub use onset::{trigger_onset, Onset, OnsetConfig, Trigger, TriggerEvent};
pub use pipeline::{ChannelDetector, Detector, DetectorConfig};
pub use stalta::{
    classic_sta_lta, recursive_sta_lta, ClassicStaLta, RecursiveStaLta, StaLta, StaLtaConfig,
    StaLtaKind,
};
pub use window::{
    window_cf, Direction, Scale, Statistic, WindowConfig, WindowDetector, WindowError,
};
