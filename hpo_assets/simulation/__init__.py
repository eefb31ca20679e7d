"""Known-truth simulations of every statistical rule (paired comparisons, importance, ECE): they import
what they check, so they sit above the analysis. benchmarks/stats_calibration.py runs them at full size;
the tests run fixed-seed subsets."""
