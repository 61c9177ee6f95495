"""REST for customers and their assets (CONTRACT §7): `/api/v1/customers…`.
Views parse, call one use case, and shape the answer."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from marshmallow import Schema, ValidationError

from engine.exceptions import LiaisonError
from engine.services import customers
from forms.api import core, roles
from forms.errors import json_object, liaison_error_response, validation_error_response
from forms.schemas import AssetIn, AssetPatch, CustomerIn, CustomerPatch, MergeIn

customers_api = Blueprint("customers_api", __name__, url_prefix="/api/v1")

READERS = ("agent", "integration_manager")  # and admin, who may do everything
EDITORS = ("agent", "integration_manager")  # agents open tickets for new customers anyway
MANAGERS = ("integration_manager",)  # merge customers, delete assets


def _body(schema: type[Schema]) -> dict:
    data = json_object()
    return schema().load(data)


@customers_api.get("/customers")
@roles(*READERS)
def list_customers():
    return jsonify(core().run(customers.list_customers, request.args.get("q")))


@customers_api.post("/customers")
@roles(*EDITORS)
def create_customer():
    return jsonify(core().run(customers.create_customer, **_body(CustomerIn))), 201


@customers_api.get("/customers/<int:customer_id>")
@roles(*READERS)
def get_customer(customer_id: int):
    return jsonify(core().run(customers.get_customer, customer_id))


@customers_api.patch("/customers/<int:customer_id>")
@roles(*EDITORS)
def update_customer(customer_id: int):
    return jsonify(core().run(customers.update_customer, customer_id,
                              **_body(CustomerPatch)))


@customers_api.post("/customers/<int:customer_id>/merge")
@roles(*MANAGERS)
def merge_customer(customer_id: int):
    return jsonify(core().run(customers.merge_customers, customer_id, _body(MergeIn)["into"]))


@customers_api.get("/customers/<int:customer_id>/assets")
@roles(*READERS)
def list_assets(customer_id: int):
    return jsonify(core().run(customers.list_assets, customer_id))


@customers_api.post("/customers/<int:customer_id>/assets")
@roles(*EDITORS)
def create_asset(customer_id: int):
    return jsonify(core().run(customers.create_asset, customer_id, **_body(AssetIn))), 201


@customers_api.patch("/customers/<int:customer_id>/assets/<int:asset_id>")
@roles(*EDITORS)
def update_asset(customer_id: int, asset_id: int):
    return jsonify(core().run(customers.update_asset, customer_id, asset_id,
                              **_body(AssetPatch)))


@customers_api.delete("/customers/<int:customer_id>/assets/<int:asset_id>")
@roles(*MANAGERS)
def delete_asset(customer_id: int, asset_id: int):
    core().run(customers.delete_asset, customer_id, asset_id)
    return "", 204


customers_api.register_error_handler(LiaisonError, liaison_error_response)
customers_api.register_error_handler(ValidationError, validation_error_response)
