"""Training with per-epoch re-selection inside transformers.Trainer / TRL SFTTrainer."""
