"""What a backfill will cost before it runs: compute-hours from FLOPs, calibrated by stored trials or a probe.

`cost.py` holds the cost model (FLOPs per epoch, the least-squares calibration, stored-trial history),
`probe.py` the measured probe for a device with no history, `plan.py` the plan of a backfill and of one
study run (`hpo-assets plan`, the `hpo_study` asset's predicted hours). It sits above `training` and
`search`, which never import it.
"""
