//! `cfg_*!` macros: each puts items behind a cargo feature **and** marks them
//! with the matching `doc(cfg)` badge on docs.rs, so the two never drift.

macro_rules! cfg_feature {
    ($feature:literal; $($item:item)*) => {
        $(
            #[cfg(feature = $feature)]
            #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
            $item
        )*
    };
}

macro_rules! cfg_tokio {
    ($($item:item)*) => { cfg_feature!("tokio"; $($item)*); };
}

macro_rules! cfg_smol {
    ($($item:item)*) => { cfg_feature!("smol"; $($item)*); };
}

macro_rules! cfg_async_std {
    ($($item:item)*) => { cfg_feature!("async-std"; $($item)*); };
}

macro_rules! cfg_tokio_util {
    ($($item:item)*) => { cfg_feature!("tokio-util"; $($item)*); };
}

macro_rules! cfg_sim {
    ($($item:item)*) => { cfg_feature!("sim"; $($item)*); };
}

macro_rules! cfg_compio {
    ($($item:item)*) => { cfg_feature!("compio"; $($item)*); };
}

macro_rules! cfg_monoio {
    ($($item:item)*) => { cfg_feature!("monoio"; $($item)*); };
}

macro_rules! cfg_hyper {
    ($($item:item)*) => { cfg_feature!("hyper"; $($item)*); };
}
