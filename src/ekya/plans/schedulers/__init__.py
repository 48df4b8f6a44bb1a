"""The schedulers shipped with ekya, one module each; configure them from conf/scheduler/*.yaml."""
