//! Where the planets are: Earth–Mars and Earth–Jupiter distances, one-way light time and the
//! Sun–Earth–planet angle for a date, from JPL's "Approximate Positions of the Planets"
//! (E. M. Standish, JPL/Caltech; Table 1: Keplerian elements and rates, J2000 mean ecliptic and
//! equinox, valid 1800 AD – 2050 AD). The Earth–Moon distance uses the leading terms of the
//! lunar distance series in J. Meeus, *Astronomical Algorithms*, 2nd ed., ch. 47.
//!
//! Method (the JPL note, section 8.10): elements at `T` Julian centuries from J2000.0; mean
//! anomaly `M = L − ϖ`; Kepler's equation `M = E − e sin E` solved by Newton's method; position
//! in the orbital plane; rotation into the ecliptic frame. Earth is taken as the Earth–Moon
//! barycentre (at most ~4,700 km away: under 16 ms of light time).

use chrono::{DateTime, Datelike, TimeZone, Utc};

/// One astronomical unit, km (IAU 2012).
pub const AU_KM: f64 = 149_597_870.7;
/// Speed of light, km/s.
pub const C_KM_S: f64 = 299_792.458;

/// Bodies the ephemeris can place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// The Earth–Moon barycentre.
    Earth,
    /// Mars.
    Mars,
    /// Jupiter.
    Jupiter,
}

/// Keplerian elements at J2000 and their rates per Julian century (JPL Table 1):
/// a (au), e, I (deg), L (deg), ϖ long. of perihelion (deg), Ω long. of ascending node (deg).
struct Elements {
    at_epoch: [f64; 6],
    per_century: [f64; 6],
}

const EM_BARY: Elements = Elements {
    at_epoch: [
        1.000_002_61,
        0.016_711_23,
        -0.000_015_31,
        100.464_571_66,
        102.937_681_93,
        0.0,
    ],
    per_century: [
        0.000_005_62,
        -0.000_043_92,
        -0.012_946_68,
        35_999.372_449_81,
        0.323_273_64,
        0.0,
    ],
};
const MARS: Elements = Elements {
    at_epoch: [
        1.523_710_34,
        0.093_394_10,
        1.849_691_42,
        -4.553_432_05,
        -23.943_629_59,
        49.559_538_91,
    ],
    per_century: [
        0.000_018_47,
        0.000_078_82,
        -0.008_131_31,
        19_140.302_684_99,
        0.444_410_88,
        -0.292_573_43,
    ],
};
const JUPITER: Elements = Elements {
    at_epoch: [
        5.202_887_00,
        0.048_386_24,
        1.304_396_95,
        34.396_440_51,
        14.728_479_83,
        100.473_909_09,
    ],
    per_century: [
        -0.000_116_07,
        -0.000_132_53,
        -0.001_837_14,
        3_034.746_127_75,
        0.212_526_68,
        0.204_691_06,
    ],
};

/// The first and last years the elements are valid for.
pub const VALID_YEARS: (i32, i32) = (1800, 2050);

/// A date outside the elements' validity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{date} is outside the ephemeris's validity ({first}–{last}); pick a date in that range")]
pub struct OutOfRange {
    /// The date asked for (RFC 3339).
    pub date: String,
    /// First valid year.
    pub first: i32,
    /// Last valid year.
    pub last: i32,
}

/// Julian centuries since J2000.0 (2000-01-01 12:00 TT; UTC is used, a ~1 minute difference
/// that moves Mars by well under a kilometre-second of light time).
fn centuries_since_j2000(at: DateTime<Utc>) -> f64 {
    let j2000 = Utc
        .with_ymd_and_hms(2000, 1, 1, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let days = (at - j2000).num_milliseconds() as f64 / 86_400_000.0;
    days / 36_525.0
}

fn check_range(at: DateTime<Utc>) -> Result<(), OutOfRange> {
    if at.year() < VALID_YEARS.0 || at.year() > VALID_YEARS.1 {
        return Err(OutOfRange {
            date: at.to_rfc3339(),
            first: VALID_YEARS.0,
            last: VALID_YEARS.1,
        });
    }
    Ok(())
}

/// Solves Kepler's equation `M = E − e sin E` (radians) by Newton's method.
pub fn eccentric_anomaly(mean_anomaly: f64, e: f64) -> f64 {
    let mut ecc = mean_anomaly + e * mean_anomaly.sin();
    for _ in 0..30 {
        let delta = (ecc - e * ecc.sin() - mean_anomaly) / (1.0 - e * ecc.cos());
        ecc -= delta;
        if delta.abs() < 1e-12 {
            break;
        }
    }
    ecc
}

/// Heliocentric ecliptic position (au) of a body, `t` centuries from J2000.
fn heliocentric(body: Body, t: f64) -> [f64; 3] {
    let el = match body {
        Body::Earth => &EM_BARY,
        Body::Mars => &MARS,
        Body::Jupiter => &JUPITER,
    };
    let v: Vec<f64> = (0..6)
        .map(|i| el.at_epoch[i] + el.per_century[i] * t)
        .collect();
    let (a, e) = (v[0], v[1]);
    let (inc, long, peri, node) = (v[2].to_radians(), v[3], v[4], v[5]);
    let omega = (peri - node).to_radians();
    let mut m = (long - peri).rem_euclid(360.0);
    if m > 180.0 {
        m -= 360.0;
    }
    let ecc = eccentric_anomaly(m.to_radians(), e);
    let xp = a * (ecc.cos() - e);
    let yp = a * (1.0 - e * e).sqrt() * ecc.sin();
    let (so, co) = omega.sin_cos();
    let (sn, cn) = node.to_radians().sin_cos();
    let (si, ci) = inc.sin_cos();
    [
        (co * cn - so * sn * ci) * xp + (-so * cn - co * sn * ci) * yp,
        (co * sn + so * cn * ci) * xp + (-so * sn + co * cn * ci) * yp,
        (so * si) * xp + (co * si) * yp,
    ]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn norm(a: [f64; 3]) -> f64 {
    (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt()
}

/// Geometry of the Earth–planet link at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkGeometry {
    /// Earth–planet distance, au.
    pub distance_au: f64,
    /// Sun–Earth–planet angle (solar elongation), degrees. Small means the planet is behind
    /// (or in front of) the Sun as seen from Earth: solar conjunction.
    pub elongation_deg: f64,
}

impl LinkGeometry {
    /// Distance in km.
    pub fn distance_km(&self) -> f64 {
        self.distance_au * AU_KM
    }

    /// One-way light time, seconds.
    pub fn light_seconds(&self) -> f64 {
        self.distance_km() / C_KM_S
    }
}

/// Earth–planet geometry at `at`.
pub fn planet_link(body: Body, at: DateTime<Utc>) -> Result<LinkGeometry, OutOfRange> {
    check_range(at)?;
    let t = centuries_since_j2000(at);
    let earth = heliocentric(Body::Earth, t);
    let planet = heliocentric(body, t);
    let to_planet = sub(planet, earth);
    let to_sun = [-earth[0], -earth[1], -earth[2]];
    let distance = norm(to_planet);
    let cos = (to_planet[0] * to_sun[0] + to_planet[1] * to_sun[1] + to_planet[2] * to_sun[2])
        / (distance * norm(to_sun));
    Ok(LinkGeometry {
        distance_au: distance,
        elongation_deg: cos.clamp(-1.0, 1.0).acos().to_degrees(),
    })
}

/// Earth–Moon distance in km at `at` (Meeus ch. 47, Table 47.A, the six largest distance
/// terms; error a few hundred km, about a millisecond of light time).
pub fn moon_distance_km(at: DateTime<Utc>) -> Result<f64, OutOfRange> {
    check_range(at)?;
    let t = centuries_since_j2000(at);
    let d = (297.850_192_1 + 445_267.111_403_4 * t).to_radians();
    let m = (357.529_109_2 + 35_999.050_290_9 * t).to_radians();
    let mp = (134.963_396_4 + 477_198.867_505_5 * t).to_radians();
    Ok(385_000.56
        - 20_905.355 * mp.cos()
        - 3_699.111 * (2.0 * d - mp).cos()
        - 2_955.968 * (2.0 * d).cos()
        - 569.925 * (2.0 * mp).cos()
        + 48.888 * m.cos()
        + 246.158 * (2.0 * d - 2.0 * mp).cos())
}

#[cfg(test)]
mod tests;
