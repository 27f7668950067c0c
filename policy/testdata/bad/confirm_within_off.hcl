# want: 6:3 confirm_within with confirm = false
door "k" {
  sequence       = ["7000", "8000", "9000"]
  open           = ["22"]
  confirm        = false
  confirm_within = "5s"
}
