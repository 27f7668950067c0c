// Package fuzzlist holds only a test: it checks that the Makefile's
// FUZZ_TARGETS, the list `make fuzz` runs, names every fuzz target of the
// module and nothing else, so that a new target cannot be forgotten.
package fuzzlist
