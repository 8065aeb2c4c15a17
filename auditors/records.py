"""placeholder replaced below"""
def check_records(root, baseline_bpb):
    return []
