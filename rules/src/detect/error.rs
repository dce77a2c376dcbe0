//! [`ConfigError`]: why a detector's parameters cannot be used.

/// A detector parameter that cannot work, naming the parameter (as the rules file
/// will), its value and what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A number that must be finite and above zero is not.
    #[error("`{field}` is {value}: it must be a finite number above zero")]
    NotPositive {
        /// The parameter.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// The long-term window is not longer than the short-term one.
    #[error(
        "`lta` ({lta} samples) must be longer than `sta` ({sta} samples): make the \
         long-term window longer or the short-term one shorter"
    )]
    LtaNotLonger {
        /// Short-term window, samples.
        sta: usize,
        /// Long-term window, samples.
        lta: usize,
    },
    /// A window is shorter than one sample at this rate.
    #[error(
        "`{field}` is {seconds} s, less than one sample at {rate} samples/s: make it at \
         least {min} s"
    )]
    WindowTooShort {
        /// The parameter (`sta` or `lta`).
        field: &'static str,
        /// The window asked for, seconds.
        seconds: f64,
        /// The channel's sample rate.
        rate: f64,
        /// One sample period, seconds.
        min: f64,
    },
    /// The trigger-off threshold is above the trigger-on one.
    #[error(
        "`off` ({off}) is above `on` ({on}): a trigger ends when the ratio falls below \
         `off`, so `off` must be at most `on`"
    )]
    OffAboveOn {
        /// Trigger-on threshold.
        on: f64,
        /// Trigger-off threshold.
        off: f64,
    },
    /// A band edge is not inside (0, Nyquist).
    #[error(
        "`{field}` is {value} Hz, outside (0, {nyquist}) Hz, the open band below Nyquist \
         at {rate} samples/s"
    )]
    BandEdge {
        /// `freqmin` or `freqmax`.
        field: &'static str,
        /// The edge, Hz.
        value: f64,
        /// Half the sample rate, Hz.
        nyquist: f64,
        /// The sample rate.
        rate: f64,
    },
    /// The band's low edge is not below its high edge.
    #[error("`freqmin` ({freqmin} Hz) must be below `freqmax` ({freqmax} Hz)")]
    BandOrder {
        /// Low edge, Hz.
        freqmin: f64,
        /// High edge, Hz.
        freqmax: f64,
    },
    /// The filter order is outside what is supported.
    #[error("`corners` is {corners}: use 1 to {max} (4 is ObsPy's default)")]
    Corners {
        /// The order asked for.
        corners: usize,
        /// The highest order supported.
        max: usize,
    },
}

impl ConfigError {
    /// The parameter the error is about, as named in rules files.
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::NotPositive { field, .. }
            | ConfigError::WindowTooShort { field, .. }
            | ConfigError::BandEdge { field, .. } => field,
            ConfigError::LtaNotLonger { .. } => "lta",
            ConfigError::OffAboveOn { .. } => "off",
            ConfigError::BandOrder { .. } => "freqmin",
            ConfigError::Corners { .. } => "corners",
        }
    }
}

/// `value` if finite and above zero, else [`ConfigError::NotPositive`].
pub(crate) fn positive(field: &'static str, value: f64) -> Result<f64, ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ConfigError::NotPositive { field, value })
    }
}
