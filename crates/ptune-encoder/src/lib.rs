//! The P-tuning prompt encoder. Not implemented yet: tracked by the prompt-encoder issue.
