THRESHOLDS = {'residual_min': 0.04791, 'changed_min': 0.003899, 'frozen_max': 0.00275, 'steady_min': 0.6}
