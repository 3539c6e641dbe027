//! OSPFv2 for anycastd (in progress: see the OSPF speaker issue).
