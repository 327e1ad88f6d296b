"""What every django-tables2 list view of the project shares."""


class TableColumnsSortMixin:
    """Only the table's own column names reach django-tables2's `?sort=`.

    django-tables2 reads the parameter as accessors: a dotted name it does not know was parsed as a path, with a
    deprecation warning (its next version changes that behaviour). Anything else is dropped here; a sort naming no
    column leaves the table in its default order."""

    def dispatch(self, request, *args, **kwargs):
        sort = request.GET.get("sort")
        if sort is not None:
            request.GET = request.GET.copy()
            columns = [n.strip() for n in sort.split(",") if n.strip().lstrip("-") in self.table_class.base_columns]
            if columns:
                request.GET["sort"] = ",".join(columns)
            else:
                del request.GET["sort"]
        return super().dispatch(request, *args, **kwargs)
