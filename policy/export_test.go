package policy

// ScanOddsOf exposes scanOdds (the chance for n steps and m probes) to the
// external test, which checks it against the real matcher.
var ScanOddsOf = scanOdds
