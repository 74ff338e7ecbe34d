"""LSR (raw-pixel linear baseline) against its top-k pruning: ACC on independent and dependent
unions of subspaces and on digits, for k_keep in {10, 20, 40} and lam in {1, 0.1, 0.01}.

    python benchmarks/probe_lsr_k_keep.py

Since the spectral step uses a dense (or block) eigensolver instead of single-vector Lanczos, every
k_keep / lam gives ACC 1.0 on both generated sets; on digits only k_keep / lam change the result.
"""
from graphrec.datasets.generators import make_union_of_subspaces
from graphrec.metrics import clustering_accuracy
from graphrec.subspace.deep_sc import LSRSubspaceClustering
from sklearn.datasets import load_digits
D,t=load_digits(return_X_y=True)
for kk in [10,20,40]:
  for lam in [1.0, 0.1, 0.01]:
    accs=[]
    for seed in range(3):
        X,y=make_union_of_subspaces(500,6,30,4,noise=0.01,random_state=seed)
        accs.append(clustering_accuracy(y,LSRSubspaceClustering(n_clusters=6,lam=lam,k_keep=kk,random_state=seed).fit_predict(X)))
    X,y=make_union_of_subspaces(500,10,30,4,noise=0.01,random_state=0)
    g=clustering_accuracy(y,LSRSubspaceClustering(n_clusters=10,lam=lam,k_keep=kk,random_state=0).fit_predict(X))
    d=clustering_accuracy(t,LSRSubspaceClustering(n_clusters=10,lam=lam,k_keep=kk,random_state=0).fit_predict(D))
    print(kk,lam,"indep",[round(a,3) for a in accs],"dep",round(g,3),"digits",round(d,3),flush=True)
