module kubectl-mcsa/images/pause

go 1.26
