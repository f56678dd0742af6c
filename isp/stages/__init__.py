"""One module per ISP stage, all behind the `Stage` interface of `isp.stages.base`."""
