# want: 6:20 confirm_within above open_for
door "k" {
  sequence       = ["7000", "8000", "9000"]
  open           = ["22"]
  open_for       = "20s"
  confirm_within = "30s"
}
