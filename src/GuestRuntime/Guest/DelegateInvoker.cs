using System.Buffers;
using System.Reflection;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Runs a delegate the host sent: the method is found by its declaring type and metadata token (the
/// module version id proves both sides mean the same build), the target (a lambda's closure object)
/// is deserialized, and the result is serialized as the method's declared return type.
/// Request: <c>[InvokeDelegate, assemblyName, declaringTypeFullName, metadataToken, moduleVersionId, closure|nil]</c>.
/// </summary>
internal static class DelegateInvoker
{
    private static readonly Dictionary<(Type Type, int Token), MethodInfo> s_methods = new();

    /// <summary>Handles one request (the reader is positioned after the kind).</summary>
    public static void Invoke(ref MessagePackReader reader, IBufferWriter<byte> output)
    {
        var assemblyName = reader.ReadString() ?? "";
        var typeName = reader.ReadString() ?? "";
        var token = reader.ReadInt32();
        var moduleVersionId = reader.ReadString() ?? "";
        var target = reader.TryReadNil() ? (ReadOnlySequence<byte>?)null : reader.ReadBytes();

        // Loading the assembly first makes a missing assembly a FileNotFoundException that names it.
        Assembly assembly;
        try
        {
            assembly = Assembly.Load(new AssemblyName(assemblyName));
        }
        catch (FileNotFoundException)
        {
            Replies.WriteException(output, new FileNotFoundException(
                $"Could not load assembly '{assemblyName}' in the sandbox: no assembly loader of the host provides it " +
                "(see IsolatedRuntimeHost.WithBinDirectoryAssemblyLoader and WithAssemblyLoader).", assemblyName));
            return;
        }
        var type = assembly.GetType(typeName, throwOnError: true)!;
        if (type.Module.ModuleVersionId.ToString() != moduleVersionId)
        {
            Replies.WriteBadRequest(output,
                $"The sandbox loaded a different build of assembly '{type.Assembly.FullName}' than the host uses (module version {type.Module.ModuleVersionId}, host {moduleVersionId}). Check the host's assembly loaders.");
            return;
        }
        var method = FindMethod(type, token);
        if (method is null)
        {
            Replies.WriteBadRequest(output, $"Method token 0x{token:X8} was not found on type '{type.FullName}'.");
            return;
        }

        object? instance = null;
        if (!method.IsStatic)
        {
            instance = target is { } bytes ? ClosureSerializer.Deserialize(type, bytes) : null;
            if (instance is null)
            {
                Replies.WriteBadRequest(output, $"The delegate's target of type '{type.FullName}' was missing.");
                return;
            }
        }

        object? result;
        try
        {
            result = method.Invoke(instance, BindingFlags.DoNotWrapExceptions, binder: null, parameters: null, culture: null);
        }
        catch (Exception e)
        {
            Replies.WriteException(output, e);
            return;
        }
        WriteResult(output, method.ReturnType, result);
    }

    /// <summary>Serializes a result (void methods reply nil).</summary>
    public static void WriteResult(IBufferWriter<byte> output, Type returnType, object? result)
    {
        if (returnType == typeof(void))
        {
            Replies.WriteSuccess(output, default, hasResult: false);
            return;
        }
        var bytes = MessagePackSerializer.Serialize(returnType, result, IsolatedSerializer.Options);
        Replies.WriteSuccess(output, bytes, hasResult: true);
    }

    private static MethodInfo? FindMethod(Type type, int token)
    {
        if (!s_methods.TryGetValue((type, token), out var method))
        {
            const BindingFlags All = BindingFlags.DeclaredOnly | BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
            method = type.GetMethods(All).FirstOrDefault(m => m.MetadataToken == token);
            if (method is null)
            {
                return null;
            }
            s_methods[(type, token)] = method;
        }
        return method;
    }
}
