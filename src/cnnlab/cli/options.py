"""Option help and choices shared by several subcommands (choices come from the registries they name)."""

PRECISION_HELP = "auto | fp32 | bf16: auto is bf16 + channels_last where the CPU has native bf16; fp32 is exact."
COMPILE_HELP = "auto | on | off: torch.compile the model; auto compiles when the job pays the few seconds back."
