"""LangChain's own standard test suites (``langchain-tests``) over the ragpress adapters, on tiny
random models. Features the adapters do not have (tool calling, structured output, images...) are
switched off by the suites' own properties, which skip exactly those tests."""

import shutil

import pytest

pytest.importorskip("langchain_tests")

from pydoc_data.topics import topics  # noqa: E402

from langchain_tests.integration_tests import ChatModelIntegrationTests, RetrieversIntegrationTests  # noqa: E402
from langchain_tests.unit_tests import ChatModelUnitTests  # noqa: E402

from ragpress.chunkers.token_window import TokenWindowChunker  # noqa: E402
from ragpress.generators.transformers_lm import TransformersGenerator  # noqa: E402
from ragpress.integrations.langchain import RagpressChatModel, RagpressRetriever, RagpressTextSplitter  # noqa: E402
from ragpress.retrievers.bm25 import BM25Retriever  # noqa: E402


class TestRagpressRetriever(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[RagpressRetriever]:
        return RagpressRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        splits = RagpressTextSplitter(TokenWindowChunker(size=40, overlap=0)).create_documents([topics["with"], topics["for"]])
        return {"retriever": BM25Retriever(), "documents": splits}

    @property
    def retriever_query_example(self) -> str:
        return "What does the with statement call?"


class ChatModelSettings:
    """The chat model over a tiny random Llama (greedy with a repetition penalty, so that it says
    something), and a copy of it under another path for the per-call ``model=`` override."""

    @pytest.fixture(autouse=True, scope="class")
    def _models(self, request, tiny_lm_path, tmp_path_factory):
        request.cls.lm_path = tiny_lm_path
        request.cls.other_path = str(tmp_path_factory.mktemp("other") / "tiny_lm_copy")
        shutil.copytree(tiny_lm_path, request.cls.other_path)

    @property
    def chat_model_class(self) -> type[RagpressChatModel]:
        return RagpressChatModel

    @property
    def chat_model_params(self) -> dict:
        return {"generator": TransformersGenerator(model=self.lm_path, device="cpu", repetition_penalty=1.5)}

    @property
    def standard_chat_model_params(self) -> dict:
        return super().standard_chat_model_params | {"max_tokens": 8}  # tiny model, short replies: fast

    @property
    def model_override_value(self) -> str:
        return self.other_path


class TestRagpressChatModelUnit(ChatModelSettings, ChatModelUnitTests):
    pass


class TestRagpressChatModelIntegration(ChatModelSettings, ChatModelIntegrationTests):
    pass
